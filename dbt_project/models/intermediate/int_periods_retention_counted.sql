{#- One row per grain (week, month, quarter, year) x period: the 'overall' rows of
    int_periods_retention_counted_by_dimension, where the counting is documented. -#}
{{ config(materialized='view') }}

with

overall as (

    select * from {{ ref('int_periods_retention_counted_by_dimension') }}
    where dimension = 'overall'

),

final as (

    select
        grain,
        period_start,
        period_end,
        customers_start,
        customers_end,
        new_customers,
        reactivated_customers,
        retained_customers,
        lost_customers,
        churned_customers,
        retention_rate_pct,
        churn_rate_pct,
        is_complete

    from overall

)

select * from final
