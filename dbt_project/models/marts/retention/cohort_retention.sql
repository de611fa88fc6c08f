{#- The cohort triangle per dimension and segment (macro retention_dimensions). Weeks
    have the 'overall' rows only (macro cohort_dimension_grains): weekly cohorts split
    by segment are mostly too small to read and would multiply the rows. -#}
{%- set grains = ['week', 'month', 'quarter'] -%}
{%- set dimension_grains = cohort_dimension_grains() -%}
{%- set attributes = retention_attributes() -%}

with

customer_periods as (

    select
        customer_periods.grain,
        customer_periods.cohort_start,
        customer_periods.period_start,
        customer_periods.orders,
        customer_periods.revenue
        {%- for attribute in attributes %},
        dimensions.{{ attribute }}
        {%- endfor %}

    from {{ ref('int_customer_periods_aggregated') }} as customer_periods
    {%- if attributes %}
    inner join {{ ref('int_customer_dimensions') }} as dimensions
        on customer_periods.customer_id = dimensions.customer_id
    {%- endif %}
    where customer_periods.grain in ('{{ grains | join("', '") }}')

),

{#- Per combination of attributes first, then summed into each dimension's values. #}
combination_activity as (

    select
        grain,
        cohort_start,
        period_start,
        {%- for attribute in attributes %}
        {{ attribute }},
        {%- endfor %}
        count(*) as active_customers,
        sum(orders) as orders,
        sum(revenue) as revenue

    from customer_periods
    group by all

),

segment_activity as (

    {{ sum_by_dimension(
        'combination_activity',
        ['grain', 'cohort_start', 'period_start'],
        ['active_customers', 'orders', 'revenue'],
        {'revenue': 'decimal(38, ' ~ var('money_decimals') ~ ')'},
    ) }}

),

cohort_activity as (

    select * from segment_activity
    where dimension = 'overall' or grain in ('{{ dimension_grains | join("', '") }}')

),

{#- Every customer is active in the period of their first order, once. #}
cohort_sizes as (

    select
        grain,
        dimension,
        dimension_value,
        cohort_start,
        active_customers as cohort_size

    from cohort_activity
    where period_start = cohort_start

),

{#- Every cohort gets a cell for each period up to the as-of date's period, so a
    period in which nobody came back shows as 0 % rather than going missing. #}
cohort_spine as (

    {%- for grain in grains %}
    select
        grain,
        dimension,
        dimension_value,
        cohort_start,
        cohort_size,
        cast(period_number as integer) as period_number,
        cast({{ dbt.dateadd(grain, 'period_number', 'cohort_start') }} as date) as period_start

    from (
        select
            *,
            {{ integer_series(
                0, periods_between(grain, 'cohort_start', period_start(grain, as_of_date()))
            ) }} as period_number

        from cohort_sizes
        where grain = '{{ grain }}'
    ) as period_offsets
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

cells as (

    select
        cohort_spine.grain,
        cohort_spine.dimension,
        cohort_spine.dimension_value,
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
        and cohort_spine.dimension = cohort_activity.dimension
        and cohort_spine.dimension_value = cohort_activity.dimension_value
        and cohort_spine.cohort_start = cohort_activity.cohort_start
        and cohort_spine.period_start = cohort_activity.period_start

),

final as (

    select
        grain,
        cohort_start,
        dimension,
        dimension_value,
        period_number,
        period_start,
        cohort_size,
        active_customers,
        {{ pct('100.0 * active_customers / cohort_size') }} as retention_pct,
        orders,
        {{ money('revenue') }} as revenue,
        {#- Net revenue retention: the period's revenue over the cohort's revenue in its
            first period (period 0 = 100 %). #}
        case
            when first_period_revenue > 0 then {{ pct('cast(100.0 * revenue as double) / cast(first_period_revenue as double)') }}
        end as revenue_retention_pct,
        {{ money(money_per('sum(revenue) over (
            partition by grain, dimension, dimension_value, cohort_start
            order by period_number
            rows between unbounded preceding and current row
        )', 'cohort_size')) }} as cumulative_revenue_per_customer,
        cohort_size >= {{ var('min_retention_customers') }} as is_reportable,
        case grain
            {%- for grain in grains %}
            when '{{ grain }}' then {{ dbt.dateadd(grain, 1, 'period_start') }} <= {{ as_of_date() }} + 1
            {%- endfor %}
        end as is_complete

    from (
        select
            *,
            max(case when period_number = 0 then revenue end) over (
                partition by grain, dimension, dimension_value, cohort_start
            ) as first_period_revenue

        from cells
    ) as cells_with_first_period

)

select * from final
{{ published_order() }}
