-- Payments and refunds (negative amounts), one row per payment transaction.
select
    cast(id as integer) as payment_id,
    cast(order_id as integer) as order_id,
    lower(method) as payment_method,
    cast(amount as decimal(10, 2)) as amount,
    {{ shop_macros.is_refund('cast(amount as decimal(10, 2))') }} as is_refund,
    cast(paid_at as timestamp) as paid_at,
    cast(paid_at as date) as paid_on
from {{ ref('raw_payments') }}
