{#- One row per customer with at least one completed order: the inputs of every CLV
    definition as of the run's as-of date. The BTYD inputs follow the literature (and
    lifetimes' summary_data_from_transaction_data at day level): purchases are counted
    per distinct purchase day, so two orders on one day are one purchase. The same scan
    of the orders also sums the calibration window (up to the as-of date - var
    clv_holdout_days) and the holdout window after it, which
    int_customers_summarised_for_clv_holdout turns into the holdout check's inputs. -#}
{%- set calibration_end = dbt.dateadd('day', -var('clv_holdout_days'), as_of_date()) -%}
{%- set in_calibration = 'order_date <= ' ~ calibration_end -%}
{%- set in_holdout = 'order_date > ' ~ calibration_end ~ ' and order_date <= ' ~ as_of_date() -%}
with

completed_orders as (

    select customer_id, order_date, amount
    from {{ ref('int_orders_numbered') }}
    where is_completed

),

purchase_days as (

    select
        customer_id,
        order_date,
        count(*) as orders,
        sum(amount) as revenue

    from completed_orders
    group by customer_id, order_date

),

customers as (

    select
        customer_id,
        max(order_date) as last_order_date,
        count(*) as purchase_days,
        cast(sum(orders) as bigint) as completed_orders,
        sum(revenue) as historic_revenue,
        min_by(revenue, order_date) as first_purchase_day_revenue,
        cast(coalesce(sum(orders) filter (
            where order_date > {{ dbt.dateadd('day', -365, as_of_date()) }}
        ), 0) as bigint) as orders_365d,
        coalesce(sum(revenue) filter (
            where order_date > {{ dbt.dateadd('day', -365, as_of_date()) }}
        ), 0) as revenue_365d,
        max(order_date) filter (where {{ in_calibration }}) as last_calibration_purchase_date,
        cast(count(*) filter (where {{ in_calibration }}) as bigint) as calibration_purchase_days,
        sum(revenue) filter (where {{ in_calibration }}) as calibration_revenue,
        cast(count(*) filter (where {{ in_holdout }}) as bigint) as holdout_purchase_days,
        coalesce(sum(revenue) filter (where {{ in_holdout }}), 0) as holdout_revenue,
        {#- days after the calibration end grow with the date: sorted, they are in date order -#}
        {{ sorted_list(dbt.datediff(calibration_end, 'order_date', 'day'), in_holdout) }}
            as holdout_day_offsets

    from purchase_days
    group by customer_id

),

final as (

    select
        customers.customer_id,
        acquired.first_order_date,
        customers.last_order_date,
        completed_orders,
        historic_revenue,
        orders_365d,
        revenue_365d,
        {{ btyd_inputs(
            'acquired.first_order_date', 'customers.last_order_date', as_of_date(),
            'purchase_days', 'historic_revenue', 'first_purchase_day_revenue'
        ) }},
        {{ as_of_date() }} as as_of_date,
        first_purchase_day_revenue,
        last_calibration_purchase_date,
        calibration_purchase_days,
        calibration_revenue,
        holdout_purchase_days,
        holdout_revenue,
        holdout_day_offsets

    from customers
    inner join {{ ref('int_customers_acquired') }} as acquired
        on customers.customer_id = acquired.customer_id

)

select * from final
