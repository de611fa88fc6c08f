{%- set grains = ['week', 'month', 'quarter'] -%}

with

customer_periods as (

    select * from {{ ref('int_customer_periods_aggregated') }}
    where grain in ('{{ grains | join("', '") }}')

),

cohort_sizes as (

    select
        grain,
        cohort_start,
        count(distinct customer_id) as cohort_size

    from customer_periods
    group by grain, cohort_start

),

cohort_activity as (

    select
        grain,
        cohort_start,
        period_start,
        count(*) as active_customers,
        cast(sum(orders) as bigint) as orders,
        sum(revenue) as revenue

    from customer_periods
    group by grain, cohort_start, period_start

),

{#- Every cohort gets a cell for each period up to the as-of date's period, so a
    period in which nobody came back shows as 0 % rather than going missing. #}
cohort_spine as (

    {%- for grain in grains %}
    select
        cohort_sizes.grain,
        cohort_sizes.cohort_start,
        cohort_sizes.cohort_size,
        cast(period_offsets.period_number as integer) as period_number,
        cast({{ dbt.dateadd(grain, 'period_offsets.period_number', 'cohort_sizes.cohort_start') }} as date)
            as period_start

    from cohort_sizes
    cross join lateral (
        select unnest(generate_series(
            0,
            {{ periods_between(grain, 'cohort_sizes.cohort_start', period_start(grain, as_of_date())) }}
        )) as period_number
    ) as period_offsets
    where cohort_sizes.grain = '{{ grain }}'
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

cells as (

    select
        cohort_spine.grain,
        cohort_spine.cohort_start,
        cohort_spine.period_number,
        cohort_spine.period_start,
        cohort_spine.cohort_size,
        coalesce(cohort_activity.active_customers, 0) as active_customers,
        coalesce(cohort_activity.orders, 0) as orders,
        coalesce(cohort_activity.revenue, 0) as revenue

    from cohort_spine
    left join cohort_activity
        on cohort_spine.grain = cohort_activity.grain
        and cohort_spine.cohort_start = cohort_activity.cohort_start
        and cohort_spine.period_start = cohort_activity.period_start

),

final as (

    select
        grain,
        cohort_start,
        period_number,
        period_start,
        cohort_size,
        active_customers,
        {{ pct('100.0 * active_customers / cohort_size') }} as retention_pct,
        orders,
        {{ money('revenue') }} as revenue,
        {{ money('sum(revenue) over (
            partition by grain, cohort_start
            order by period_number
            rows between unbounded preceding and current row
        ) / cohort_size') }} as cumulative_revenue_per_customer,
        case grain
            {%- for grain in grains %}
            when '{{ grain }}' then {{ dbt.dateadd(grain, 1, 'period_start') }} <= {{ as_of_date() }} + 1
            {%- endfor %}
        end as is_complete

    from cells

)

select * from final
{{ published_order() }}
