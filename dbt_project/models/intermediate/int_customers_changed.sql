{#- One row per customer whose rows the incremental models recompute on this run
    (macros/incremental.sql): the customers whose raw rows an ingest wrote or removed
    since the last run that completed its dbt build (audit.changed_customers), and the
    customers with rows that the as-of date's move since that build makes visible
    (dated after its as-of date, up to this one). With no such build, every customer.
    The last completed build is taken from the run record: a build that failed left
    its changes to the next one, which recomputes them again (recomputing a customer
    is always correct; only missing one is not). -#}

with

runs as (

    select run_id, logical_date, started_at, completed_steps
    from {{ source('audit', 'pipeline_runs') }}

),

last_build as (

    select
        max(started_at) as started_at,
        arg_max(logical_date, started_at) as as_of_date

    from runs
    where list_contains(string_split(coalesce(completed_steps, ''), ','), 'dbt_build')

),

{#- A change by an ingest outside a recorded run (by hand, in tests) always counts. #}
ingested as (

    select changes.customer_id
    from {{ source('audit', 'changed_customers') }} as changes
    left join runs on changes.run_id = runs.run_id
    where runs.started_at is null
        or runs.started_at > coalesce(
            (select started_at from last_build), cast('-infinity' as timestamp)
        )

),

{%- set since = "coalesce((select as_of_date from last_build), cast('-infinity' as date))" %}

newly_visible as (

    select customer_id from {{ ref('stg_raw__orders') }} where order_date > {{ since }}
    union all
    select customer_id from {{ ref('stg_raw__survey_responses') }} where response_date > {{ since }}
    union all
    select customer_id from {{ ref('stg_raw__survey_sends') }} where sent_date > {{ since }}

),

final as (

    select distinct customer_id
    from (
        select customer_id from ingested
        union all
        select customer_id from newly_visible
    )

)

select * from final
