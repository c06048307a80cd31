-- Order lines as recorded at checkout: which product, how many, in which order.
select
    cast(order_id as integer) as order_id,
    cast(product_id as integer) as product_id,
    cast(quantity as integer) as quantity
from {{ ref('raw_order_items') }}
