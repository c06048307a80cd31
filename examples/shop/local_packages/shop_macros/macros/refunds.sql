{#- A payment with a negative amount is a refund. -#}
{% macro is_refund(amount) -%}
    ({{ amount }} < 0)
{%- endmacro %}
