{#- Customer acquisition cost: one row per grain (month, quarter, year) x period x
    channel with marketing spend or a new customer in the period. cac = spend / new
    customers acquired through the channel (the channel of their first completed order).
    Spend is known for the periods that overlap the spend export's days; outside them it
    is NULL (not 0), and so is cac. Customers without a channel are '(unknown)': no spend
    can be attributed to them, so their cac is NULL rather than 0. -#}
{%- set grains = period_grains_from_month() -%}

with

spend_days as (

    select spent_date, channel, amount
    from {{ ref('stg_raw__marketing_spend') }}

),

acquired as (

    select
        first_order_date,
        {{ unknown_if_missing('acquisition_channel') }} as channel

    from {{ ref('int_customers_acquired') }}

),

spend_coverage as (

    select
        min(spent_date) as first_spent_date,
        max(spent_date) as last_spent_date

    from spend_days

),

{#- Spend and acquisitions as one stream of dated events per channel. #}
channel_events as (

    select spent_date as event_date, channel, amount, 0 as customers
    from spend_days

    union all

    select first_order_date, channel, null, 1
    from acquired

),

channel_periods as (

    {%- for grain in grains %}
    select
        '{{ grain }}' as grain,
        {{ period_start(grain, 'event_date') }} as period_start,
        channel,
        sum(amount) as spend,
        sum(customers) as new_customers

    from channel_events
    group by all
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

bounded as (

    select
        channel_periods.*,
        case channel_periods.grain
            {%- for grain in grains %}
            when '{{ grain }}' then {{ period_end(grain, 'channel_periods.period_start') }}
            {%- endfor %}
        end as period_end

    from channel_periods

),

covered as (

    select
        bounded.*,
        coalesce(
            bounded.period_start <= spend_coverage.last_spent_date
            and bounded.period_end >= spend_coverage.first_spent_date,
            false
        ) as is_spend_known

    from bounded
    cross join spend_coverage

),

final as (

    select
        grain,
        period_start,
        period_end,
        channel,
        case when is_spend_known then {{ money('coalesce(spend, 0)') }} end as spend,
        cast(new_customers as bigint) as new_customers,
        case
            when is_spend_known and channel != '(unknown)' and new_customers > 0
                then {{ money(money_per('coalesce(spend, 0)', 'new_customers')) }}
        end as cac,
        is_spend_known,
        period_end <= {{ as_of_date() }} as is_complete

    from covered

)

select * from final
{{ published_order() }}
