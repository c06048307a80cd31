-- Daily revenue by order date; returned orders are excluded.
-- Incremental: a run rebuilds the days within the refund window (returns and refunds can
-- still change them) and keeps the older days as they are.
{{ config(materialized='incremental', unique_key='order_date', tags=['revenue']) }}

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
{% if is_incremental() %}
    and order_date >= (
        select max(order_date) - {{ var('refund_window_days') }} from {{ this }}
    )
{% endif %}
group by order_date
order by order_date
