-- Daily revenue by order date; returned orders are excluded.
{{ config(tags=['revenue']) }}

select
    order_date,
    count(*) as order_count,
    sum(item_count) as items_sold,
    sum(order_total) as revenue,
    sum(net_paid_amount) as collected,
    sum(open_amount) as outstanding,
    round(avg(order_total), 2) as avg_order_value
from {{ ref('int_orders_enriched') }}
where not is_returned
group by order_date
order by order_date
