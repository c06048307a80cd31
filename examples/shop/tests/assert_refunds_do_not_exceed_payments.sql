-- An order is never refunded more than was paid for it. (A singular test: the rows it
-- returns are the failures.)
select
    order_id,
    paid_amount,
    refunded_amount
from {{ ref('int_orders_enriched') }}
where refunded_amount > paid_amount
