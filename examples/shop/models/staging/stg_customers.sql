-- Customers of the shop, one row per customer, with normalised contact data.
select
    cast(id as integer) as customer_id,
    trim(name) as customer_name,
    lower(trim(email)) as email,
    upper(country) as country_code,
    cast(signed_up_at as date) as signed_up_on
from {{ ref('raw_customers') }}
