with

period_counts as (

    select * from {{ ref('int_periods_retention_counted_by_dimension') }}
    where grain in ('{{ period_grains_from_month() | join("', '") }}')

),

final as (

    select
        grain,
        period_start,
        dimension,
        dimension_value,
        period_end,
        customers_start,
        customers_end,
        new_customers,
        reactivated_customers,
        retained_customers,
        lost_customers,
        retention_rate_pct,
        churn_rate_pct,
        customers_start >= {{ var('min_retention_customers') }} as is_reportable,
        is_complete

    from period_counts

)

select * from final
{{ published_order() }}
