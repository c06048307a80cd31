{#- The history of each customer's contact data: a new version whenever the email or
    the country of a customer changes (dbt's check strategy). -#}
{% snapshot customers_snapshot %}

{{
    config(
        unique_key='id',
        strategy='check',
        check_cols=['email', 'country'],
    )
}}

select * from {{ ref('raw_customers') }}

{% endsnapshot %}
