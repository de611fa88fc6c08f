with

customers as (

    select
        customer_id,
        lifecycle_stage,
        is_high_value,
        completed_orders,
        historic_revenue,
        days_since_last_order

    from {{ ref('dim_customers') }}

),

segments as (

    select
        lifecycle_stage,
        is_high_value,
        count(*) as customers,
        {{ money('sum(historic_revenue)') }} as historic_revenue,
        {{ quantity('avg(completed_orders)') }} as avg_orders,
        {{ quantity('avg(days_since_last_order)') }} as avg_days_since_last_order

    from customers
    group by lifecycle_stage, is_high_value

),

final as (

    select
        lifecycle_stage,
        is_high_value,
        customers,
        {{ pct('100.0 * customers / sum(customers) over ()') }} as share_of_customers_pct,
        historic_revenue,
        avg_orders,
        avg_days_since_last_order

    from segments

)

select * from final
{{ published_order() }}
