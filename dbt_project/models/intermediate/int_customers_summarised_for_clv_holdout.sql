{#- One row per customer whose first completed order is on or before the calibration end
    (the as-of date - var clv_holdout_days): the BTYD inputs of the calibration window
    (as int_customers_summarised_for_clv computes them, with the calibration end for the
    as-of date) and what the customer did in the holdout window after it. -#}
{%- set holdout_days = var('clv_holdout_days') -%}
{%- set calibration_end = dbt.dateadd('day', -holdout_days, as_of_date()) -%}

with

purchase_days as (

    select
        customer_id,
        order_date,
        sum(amount) as revenue

    from {{ ref('int_orders_numbered') }}
    where is_completed and order_date <= {{ as_of_date() }}
    group by customer_id, order_date

),

customers as (

    select
        customer_id,
        max(order_date) filter (where order_date <= {{ calibration_end }})
            as last_calibration_purchase_date,
        count(*) filter (where order_date <= {{ calibration_end }}) as calibration_purchase_days,
        sum(revenue) filter (where order_date <= {{ calibration_end }}) as calibration_revenue,
        arg_min(revenue, order_date) as first_purchase_day_revenue,
        count(*) filter (where order_date > {{ calibration_end }}) as holdout_purchase_days,
        coalesce(sum(revenue) filter (where order_date > {{ calibration_end }}), 0)
            as holdout_revenue,
        list(
            {{ dbt.datediff(calibration_end, 'order_date', 'day') }} order by order_date
        ) filter (where order_date > {{ calibration_end }}) as holdout_day_offsets

    from purchase_days
    group by customer_id

),

final as (

    select
        customers.customer_id,
        acquired.first_order_date,
        {{ btyd_inputs(
            'acquired.first_order_date', 'last_calibration_purchase_date', calibration_end,
            'calibration_purchase_days', 'calibration_revenue', 'first_purchase_day_revenue'
        ) }},
        cast(holdout_purchase_days as bigint) as holdout_purchase_days,
        holdout_revenue,
        coalesce(holdout_day_offsets, []) as holdout_day_offsets,
        cast({{ calibration_end }} as date) as calibration_end_date,
        {{ as_of_date() }} as as_of_date

    from customers
    inner join {{ ref('int_customers_acquired') }} as acquired
        on customers.customer_id = acquired.customer_id
    where acquired.first_order_date <= {{ calibration_end }}

)

select * from final
