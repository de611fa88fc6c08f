{#- One row per grain (month, quarter, year) x period x customer lost in it: active at
    the period's start, not at its end (retention_by_period's lost_customers, customer by
    customer), with what the customer was buying when they left.

    "Active at the start of day b" = a completed order on one of the W days before b
    (W = churn_window_days). A purchase day d whose next purchase day comes more than W
    days later (or never, up to the as-of date) is a *lapse*: the customer is active up
    to the start of day d + W (lapse_date) and not from the day after. The customer is
    lost in period k, the period holding lapse_date, when
      - they were active at k's start: d is before it, or another purchase is on one of
        the W days before it (a period longer than W can start and end a spell), and
      - they are not active at k's end: the next purchase, if any, is after the period
        (for the period in progress nothing is after the as-of date, so only a lapse with
        no next purchase counts).
    Only a customer's last lapse of a period can meet the second condition, so each
    customer is lost at most once per period. -#}
{%- set grains = period_grains_from_month() -%}
{%- set churn_window_days = var('churn_window_days') -%}

with

purchase_days as (

    select
        customer_id,
        order_date,
        sum(amount) as revenue

    from {{ ref('int_orders_numbered') }}
    where is_completed
    group by customer_id, order_date

),

purchase_gaps as (

    select
        customer_id,
        order_date,
        lead(order_date) over (partition by customer_id order by order_date) as next_order_date,
        sum(revenue) over (
            partition by customer_id
            order by order_date
            range between interval 364 days preceding and current row
        ) as annual_value

    from purchase_days

),

lapses as (

    select
        customer_id,
        order_date as last_order_date,
        next_order_date,
        annual_value,
        cast({{ dbt.dateadd('day', churn_window_days, 'order_date') }} as date) as lapse_date

    from purchase_gaps

),

lost as (

    {%- for grain in grains %}
    {%- set lost_period_start = period_start(grain, 'lapses.lapse_date') %}
    select
        '{{ grain }}' as grain,
        {{ lost_period_start }} as period_start,
        lapses.customer_id,
        lapses.last_order_date,
        lapses.annual_value

    from lapses
    where lapses.lapse_date <= {{ as_of_date() }}
        and (
            lapses.next_order_date is null
            or lapses.next_order_date > {{ period_end(grain, lost_period_start) }}
        )
        and (
            lapses.last_order_date < {{ lost_period_start }}
            or exists (
                select 1
                from purchase_days as earlier
                where earlier.customer_id = lapses.customer_id
                    and earlier.order_date < {{ lost_period_start }}
                    and earlier.order_date
                        >= {{ dbt.dateadd('day', -churn_window_days, lost_period_start) }}
            )
        )
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

final as (

    select * from lost

)

select * from final
