{#- One row per customer whose first completed order is on or before the calibration end
    (the as-of date - var clv_holdout_days): the BTYD inputs of the calibration window
    (as int_customers_summarised_for_clv computes them, with the calibration end for the
    as-of date) and what the customer did in the holdout window after it; the sums of
    both windows come from int_customers_summarised_for_clv's scan of the orders. -#}
{%- set calibration_end = dbt.dateadd('day', -var('clv_holdout_days'), as_of_date()) -%}

with

customers as (

    select * from {{ ref('int_customers_summarised_for_clv') }}

),

final as (

    select
        customers.customer_id,
        acquired.first_order_date,
        {{ btyd_inputs(
            'acquired.first_order_date', 'last_calibration_purchase_date', calibration_end,
            'calibration_purchase_days', 'calibration_revenue', 'first_purchase_day_revenue'
        ) }},
        holdout_purchase_days,
        holdout_revenue,
        holdout_day_offsets,
        cast({{ calibration_end }} as date) as calibration_end_date,
        {{ as_of_date() }} as as_of_date

    from customers
    inner join {{ ref('int_customers_acquired') }} as acquired
        on customers.customer_id = acquired.customer_id
    where acquired.first_order_date <= {{ calibration_end }}

)

select * from final
