-- Orders with their item total, net paid amount (payments minus refunds) and open balance.
with order_totals as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as item_count,
        sum(line_amount) as order_total
    from {{ ref('int_order_lines') }}
    group by order_id
)

select
    orders.order_id,
    orders.customer_id,
    orders.ordered_at,
    orders.order_date,
    orders.status,
    orders.is_returned,
    coalesce(order_totals.line_count, 0) as line_count,
    coalesce(order_totals.item_count, 0) as item_count,
    coalesce(order_totals.order_total, 0) as order_total,
    coalesce(order_payments.paid_amount, 0) as paid_amount,
    coalesce(order_payments.refunded_amount, 0) as refunded_amount,
    coalesce(order_payments.net_paid_amount, 0) as net_paid_amount,
    coalesce(order_totals.order_total, 0) - coalesce(order_payments.paid_amount, 0)
        as open_amount
from {{ ref('stg_orders') }} as orders
left join order_totals
    on orders.order_id = order_totals.order_id
left join {{ ref('int_order_payments') }} as order_payments
    on orders.order_id = order_payments.order_id
