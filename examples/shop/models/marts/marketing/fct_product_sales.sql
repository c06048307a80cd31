-- Sales per product (returned orders excluded): units, orders, revenue and share of revenue.
-- dbt's dict form of config(); the relation is named by its alias: main.product_sales.
{{ config({'alias': 'product_sales'}) }}
with kept_lines as (
    select
        lines.product_id,
        lines.product_name,
        lines.category,
        lines.order_id,
        lines.quantity,
        lines.line_amount
    from {{ ref('int_order_lines') }} as lines
    inner join {{ ref('stg_orders') }} as orders
        on lines.order_id = orders.order_id
    where not orders.is_returned
)

select
    product_id,
    product_name,
    category,
    count(distinct order_id) as order_count,
    sum(quantity) as units_sold,
    sum(line_amount) as revenue,
    round(
        {{ safe_divide('100.0 * sum(line_amount)', 'sum(sum(line_amount)) over ()') }}, 2
    ) as revenue_share_pct
from kept_lines
group by product_id, product_name, category
order by revenue desc, product_id
