{#- One row per grain (week, month, quarter, year) x period from the first purchase
    period to the as-of date's period: customers active at the period's start and end,
    who arrived (new or reactivated), who stayed and who left, and churn events.

    "Active at instant t" = a completed order in (t - W, t], W = churn_window_days.
    Periods start at midnight, so a customer is active at the start of day b when they
    bought on one of the W days before it. Each purchase therefore makes its buyer
    active at the boundaries (purchase day + 1) .. (purchase day + W); purchases less
    than W + 1 days apart join into one *spell* of activity. Everything below is
    counted from spells (a few per customer), never from customer x day or customer x
    period rows, so the model stays fast at millions of orders.

    Boundaries per grain are the period starts b_k, k = period number, up to the
    as-of date's period K; boundary K + 1 is the end of the as-of date (as_of + 1): the
    period in progress is measured up to the as-of date. A spell covers the boundary
    numbers first_boundary .. last_boundary. Then, for period k:
      customers_start = spells covering k         customers_end = spells covering k + 1
      arrivals        = spells whose first covered boundary is k + 1 and whose customer
                        was not active at k through an earlier spell (active at the
                        end, not at the start): new when the customer's first purchase
                        is in period k, reactivated otherwise
      retained        = customers_end - arrivals   lost = customers_start - retained -#}
{%- set grains = period_grains() -%}
{%- set churn_window_days = var('churn_window_days') -%}

with

purchase_days as (

    select distinct
        customer_id,
        order_date

    from {{ ref('int_orders_numbered') }}
    where is_completed

),

spell_breaks as (

    select
        customer_id,
        order_date,
        coalesce(
            {{ dbt.datediff(
                'lag(order_date) over (partition by customer_id order by order_date)',
                'order_date',
                'day'
            ) }} > {{ churn_window_days }},
            true
        ) as starts_spell

    from purchase_days

),

spell_numbers as (

    select
        customer_id,
        order_date,
        sum(case when starts_spell then 1 else 0 end) over (
            partition by customer_id
            order by order_date
            rows between unbounded preceding and current row
        ) as spell_number

    from spell_breaks

),

spells as (

    select
        customer_id,
        spell_number,
        cast({{ dbt.dateadd('day', 1, 'min(order_date)') }} as date) as active_from,
        cast({{ dbt.dateadd('day', churn_window_days, 'max(order_date)') }} as date)
            as active_until

    from spell_numbers
    group by customer_id, spell_number

),

{#- Per grain: the boundary numbers each spell covers, and its churn event (the day
    the customer stopped being active) when that day is on or before the as-of date. #}
spell_boundaries as (

    {%- for grain in grains %}
    select
        '{{ grain }}' as grain,
        customer_id,
        {{ period_index(grain, as_of_date()) }} as as_of_period,
        {{ period_index(grain, 'acquired.first_order_date') }} as first_order_period,
        {{ period_index(grain, 'active_from') }}
            + case when active_from > {{ period_start(grain, 'active_from') }} then 1 else 0 end
            as first_boundary,
        case
            when active_until > {{ as_of_date() }} then {{ period_index(grain, as_of_date()) }} + 1
            else {{ period_index(grain, 'active_until') }}
        end as last_boundary,
        case
            when active_until <= {{ as_of_date() }} then {{ period_index(grain, 'active_until') }}
        end as churn_period

    from spells
    inner join {{ ref('int_customers_acquired') }} as acquired using (customer_id)
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

covering_spells as (

    select
        *,
        {#- A spell that starts at the boundary right after the customer's previous
            spell ended: active at both boundaries, so retained, not an arrival. #}
        coalesce(
            lag(last_boundary) over (
                partition by grain, customer_id order by first_boundary
            ) = first_boundary - 1,
            false
        ) as continues_previous_spell

    from spell_boundaries
    where first_boundary <= last_boundary

),

boundary_changes as (

    select grain, first_boundary as boundary, count(*) as change
    from covering_spells
    group by grain, first_boundary

    union all

    select grain, last_boundary + 1 as boundary, -count(*) as change
    from covering_spells
    group by grain, last_boundary + 1

),

arrivals as (

    select
        grain,
        first_boundary as boundary,
        count(*) as arrived_customers,
        count(*) filter (where first_order_period = first_boundary - 1) as new_customers

    from covering_spells
    where not continues_previous_spell
    group by grain, first_boundary

),

churn_events as (

    select
        grain,
        churn_period as period,
        count(*) as churned_customers

    from spell_boundaries
    where churn_period is not null
    group by grain, churn_period

),

{#- Every boundary from the start of the first purchase period to the end of the as-of
    date's period (K + 1). #}
boundaries as (

    select
        grain,
        unnest(generate_series(min(first_order_period), max(as_of_period) + 1)) as boundary

    from spell_boundaries
    group by grain

),

active_at_boundaries as (

    select
        boundaries.grain,
        boundaries.boundary,
        cast(sum(coalesce(changes.change, 0)) over (
            partition by boundaries.grain
            order by boundaries.boundary
            rows between unbounded preceding and current row
        ) as bigint) as active_customers

    from boundaries
    left join (
        select grain, boundary, cast(sum(change) as bigint) as change
        from boundary_changes
        group by grain, boundary
    ) as changes
        on boundaries.grain = changes.grain
        and boundaries.boundary = changes.boundary

),

{#- Period k runs from boundary k to boundary k + 1. #}
periods as (

    select
        grain,
        boundary as period,
        active_customers as customers_start,
        lead(active_customers) over (partition by grain order by boundary) as customers_end,
        lead(boundary) over (partition by grain order by boundary) as end_boundary

    from active_at_boundaries

),

counted as (

    select
        periods.grain,
        case periods.grain
            {%- for grain in grains %}
            when '{{ grain }}' then {{ period_start_of_index(grain, 'periods.period') }}
            {%- endfor %}
        end as period_start,
        periods.customers_start,
        periods.customers_end,
        coalesce(arrivals.new_customers, 0) as new_customers,
        coalesce(arrivals.arrived_customers, 0) - coalesce(arrivals.new_customers, 0)
            as reactivated_customers,
        periods.customers_end - coalesce(arrivals.arrived_customers, 0) as retained_customers,
        coalesce(churn_events.churned_customers, 0) as churned_customers

    from periods
    left join arrivals
        on periods.grain = arrivals.grain
        and periods.end_boundary = arrivals.boundary
    left join churn_events
        on periods.grain = churn_events.grain
        and periods.period = churn_events.period
    where periods.end_boundary is not null

),

final as (

    select
        grain,
        period_start,
        case grain
            {%- for grain in grains %}
            when '{{ grain }}' then {{ period_end(grain, 'period_start') }}
            {%- endfor %}
        end as period_end,
        customers_start,
        customers_end,
        new_customers,
        reactivated_customers,
        retained_customers,
        customers_start - retained_customers as lost_customers,
        churned_customers,
        case
            when customers_start > 0 then {{ pct('100.0 * retained_customers / customers_start') }}
        end as retention_rate_pct,
        {#- churn = lost / S = 100 - retention, taken from the rounded retention: a
            correctly rounded churn that adds up with retention to exactly 100. #}
        case
            when customers_start > 0
                then {{ pct('100 - ' ~ pct('100.0 * retained_customers / customers_start')) }}
        end as churn_rate_pct

    from counted

)

select
    *,
    period_end <= {{ as_of_date() }} as is_complete

from final
