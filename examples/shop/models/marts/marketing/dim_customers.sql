-- One row per customer with order history: first/last order, order count, lifetime value.
with customer_orders as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as order_count,
        count(*) filter (where is_returned) as returned_order_count,
        sum(net_paid_amount) as lifetime_value
    from {{ ref('int_orders_enriched') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.customer_name,
    customers.email,
    customers.country_code,
    customers.signed_up_on,
    customer_orders.first_order_date,
    customer_orders.last_order_date,
    coalesce(customer_orders.order_count, 0) as order_count,
    coalesce(customer_orders.returned_order_count, 0) as returned_order_count,
    coalesce(customer_orders.lifetime_value, 0) as lifetime_value
from {{ ref('stg_customers') }} as customers
left join customer_orders
    on customers.customer_id = customer_orders.customer_id
order by customers.customer_id
