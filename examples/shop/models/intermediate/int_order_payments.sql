-- Payments per order: paid, refunded (as a positive amount) and net. Ephemeral: dbt
-- inlines it as a CTE into the models that ref it and builds no relation for it.
{{ config(materialized='ephemeral') }}

select
    order_id,
    sum(case when not is_refund then amount else 0 end) as paid_amount,
    -sum(case when is_refund then amount else 0 end) as refunded_amount,
    sum(amount) as net_paid_amount
from {{ ref('stg_payments') }}
group by order_id
