{#- One row per grain (week, month, quarter, year) x dimension x dimension value x period,
    from the segment's first purchase period to the as-of date's period: customers active
    at the period's start and end, who arrived (new or reactivated), who stayed and who
    left, and churn events. Dimensions: macro retention_dimensions ('overall', value
    'all', and the customer attributes of int_customer_dimensions).

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
      retained        = customers_end - arrivals   lost = customers_start - retained

    Segments: the spells carry their customer's attributes; the changes, arrivals and
    churn events are counted per combination of attributes (a few thousand at most)
    and then summed into each dimension's values (macro sum_by_dimension), so the
    dimensions cost a few columns, not a copy of every spell per dimension. -#}
{%- set grains = period_grains() -%}
{%- set churn_window_days = var('churn_window_days') -%}
{%- set attributes = retention_attributes() -%}
{%- set attribute_prefix = (attributes | join(', ') ~ ', ') if attributes else '' -%}
{%- set segment = ['grain', 'dimension', 'dimension_value'] -%}
{%- set segment_keys = segment | join(', ') -%}

with

purchase_days as (

    select distinct
        customer_id,
        order_date

    from {{ ref('int_orders_numbered') }}
    where is_completed

),

customers as (

    select
        acquired.customer_id,
        acquired.first_order_date
        {%- for attribute in attributes %},
        dimensions.{{ attribute }}
        {%- endfor %}

    from {{ ref('int_customers_acquired') }} as acquired
    {%- if attributes %}
    inner join {{ ref('int_customer_dimensions') }} as dimensions
        on acquired.customer_id = dimensions.customer_id
    {%- endif %}

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
        spells.customer_id,
        {%- for attribute in attributes %}
        customers.{{ attribute }},
        {%- endfor %}
        {{ period_index(grain, 'customers.first_order_date') }} as first_order_period,
        {{ period_index(grain, 'spells.active_from') }}
            + case when spells.active_from > {{ period_start(grain, 'spells.active_from') }} then 1 else 0 end
            as first_boundary,
        case
            when spells.active_until > {{ as_of_date() }} then {{ period_index(grain, as_of_date()) }} + 1
            else {{ period_index(grain, 'spells.active_until') }}
        end as last_boundary,
        case
            when spells.active_until <= {{ as_of_date() }} then {{ period_index(grain, 'spells.active_until') }}
        end as churn_period

    from spells
    inner join customers on spells.customer_id = customers.customer_id
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

{#- Everything that is counted, per grain x combination of attributes x boundary (or
    period; churn_period k is the period that starts at boundary k): spells starting
    (+1) and ending (-1) to cover boundaries, arrivals, churn events, and the first
    purchase periods that start each segment's rows. #}
events as (

    select
        grain, {{ attribute_prefix }}first_boundary as boundary,
        count(*) as change, 0 as arrived_customers, 0 as new_customers,
        0 as churned_customers, 0 as first_purchases
    from covering_spells
    group by grain, {{ attribute_prefix }}first_boundary

    union all

    select grain, {{ attribute_prefix }}last_boundary + 1, -count(*), 0, 0, 0, 0
    from covering_spells
    group by grain, {{ attribute_prefix }}last_boundary + 1

    union all

    select
        grain, {{ attribute_prefix }}first_boundary,
        0, count(*), count(*) filter (where first_order_period = first_boundary - 1), 0, 0
    from covering_spells
    where not continues_previous_spell
    group by grain, {{ attribute_prefix }}first_boundary

    union all

    select grain, {{ attribute_prefix }}churn_period, 0, 0, 0, count(*), 0
    from spell_boundaries
    where churn_period is not null
    group by grain, {{ attribute_prefix }}churn_period

    union all

    select grain, {{ attribute_prefix }}first_order_period, 0, 0, 0, 0, count(*)
    from spell_boundaries
    group by grain, {{ attribute_prefix }}first_order_period

),

segment_events as (

    {{ sum_by_dimension(
        'events',
        ['grain', 'boundary'],
        ['change', 'arrived_customers', 'new_customers', 'churned_customers', 'first_purchases'],
    ) }}

),

as_of_periods as (

    {%- for grain in grains %}
    select '{{ grain }}' as grain, {{ period_index(grain, as_of_date()) }} as as_of_period
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

{#- Every boundary from the start of the segment's first purchase period to the end
    of the as-of date's period (K + 1). #}
boundaries as (

    select
        segment_starts.grain,
        segment_starts.dimension,
        segment_starts.dimension_value,
        {{ integer_series('segment_starts.first_period', 'as_of_periods.as_of_period + 1') }}
            as boundary

    from (
        select {{ segment_keys }}, min(boundary) as first_period
        from segment_events
        where first_purchases > 0
        group by {{ segment_keys }}
    ) as segment_starts
    inner join as_of_periods on segment_starts.grain = as_of_periods.grain

),

active_at_boundaries as (

    select
        boundaries.grain,
        boundaries.dimension,
        boundaries.dimension_value,
        boundaries.boundary,
        cast(sum(coalesce(segment_events.change, 0)) over (
            partition by boundaries.grain, boundaries.dimension, boundaries.dimension_value
            order by boundaries.boundary
            rows between unbounded preceding and current row
        ) as bigint) as active_customers,
        coalesce(segment_events.arrived_customers, 0) as arrived_customers,
        coalesce(segment_events.new_customers, 0) as new_customers,
        coalesce(segment_events.churned_customers, 0) as churned_customers

    from boundaries
    left join segment_events
        on boundaries.grain = segment_events.grain
        and boundaries.dimension = segment_events.dimension
        and boundaries.dimension_value = segment_events.dimension_value
        and boundaries.boundary = segment_events.boundary

),

{#- Period k runs from boundary k to boundary k + 1: its arrivals are those of
    boundary k + 1, its churn events those of period k. #}
periods as (

    select
        {{ segment_keys }},
        boundary as period,
        active_customers as customers_start,
        lead(active_customers) over segment_boundaries as customers_end,
        lead(arrived_customers) over segment_boundaries as arrived_customers,
        lead(new_customers) over segment_boundaries as new_customers,
        churned_customers

    from active_at_boundaries
    window segment_boundaries as (partition by {{ segment_keys }} order by boundary)

),

counted as (

    select
        {{ segment_keys }},
        case grain
            {%- for grain in grains %}
            when '{{ grain }}' then {{ period_start_of_index(grain, 'period') }}
            {%- endfor %}
        end as period_start,
        customers_start,
        customers_end,
        new_customers,
        arrived_customers - new_customers as reactivated_customers,
        customers_end - arrived_customers as retained_customers,
        churned_customers

    from periods
    where customers_end is not null

),

final as (

    select
        grain,
        dimension,
        dimension_value,
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
