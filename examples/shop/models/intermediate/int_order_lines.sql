-- Order lines priced with the catalogue: line amount = quantity * unit price.
select
    items.order_id,
    items.product_id,
    products.product_name,
    products.category,
    items.quantity,
    products.unit_price,
    items.quantity * products.unit_price as line_amount
from {{ ref('stg_order_items') }} as items
inner join {{ ref('stg_products') }} as products
    on items.product_id = products.product_id
