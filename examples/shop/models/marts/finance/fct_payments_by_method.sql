-- Payment volume per payment method and month, with refunds shown separately.
select
    cast(date_trunc('month', paid_on) as date) as payment_month,
    payment_method,
    count(*) filter (where not is_refund) as payment_count,
    count(*) filter (where is_refund) as refund_count,
    coalesce(sum(amount) filter (where not is_refund), 0) as gross_amount,
    coalesce(-sum(amount) filter (where is_refund), 0) as refunded_amount,
    sum(amount) as net_amount
from {{ ref('stg_payments') }}
group by payment_month, payment_method
order by payment_month, payment_method
