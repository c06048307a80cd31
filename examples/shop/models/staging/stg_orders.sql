-- Order headers, one row per order, with the order timestamp split into date and time.
select
    cast(id as integer) as order_id,
    cast(customer_id as integer) as customer_id,
    cast(ordered_at as timestamp) as ordered_at,
    cast(ordered_at as date) as order_date,
    lower(status) as status,
    lower(status) = 'returned' as is_returned
from {{ ref('raw_orders') }}
