{#- One row per customer whose rows the incremental models recompute on this run
    (macros/incremental.sql): the customers whose raw rows an ingest wrote or removed
    after the last successful build started (audit.changed_customers, noted_at), and
    the customers with rows that the as-of date's move since that build makes visible
    (dated after its as-of date, up to this one). With no successful build, every
    customer. The last successful build is the build state's (audit.build_state, the
    same build the full-rebuild decision compares with; this run's own row was reset
    to `running` when its build started): a failed build leaves its changes to the next
    one, and a run whose ingest is rerun after its build counts its changes again
    (recomputing a customer is always correct; only missing one is not).
    Survey sends are noted but left out: no incremental model reads them. On an engine
    that builds every model in full (builds_incrementally), it is every customer. -#}

{%- if not builds_incrementally() %}

select distinct customer_id
from (
    select customer_id from {{ ref('stg_raw__orders') }}
    union all
    select customer_id from {{ ref('stg_raw__survey_responses') }}
) as every_customer

{%- else %}

with

last_build as (

    select started_at, as_of_date
    from {{ source('audit', 'build_state') }}
    where status = 'success'
    order by started_at desc
    limit 1

),

ingested as (

    select customer_id
    from {{ source('audit', 'changed_customers') }}
    where source != 'survey_sends'
        and noted_at > coalesce(
            (select started_at from last_build), cast('-infinity' as timestamp)
        )

),

{%- set since = "coalesce((select as_of_date from last_build), cast('-infinity' as date))" %}

newly_visible as (

    select customer_id from {{ ref('stg_raw__orders') }} where order_date > {{ since }}
    union all
    select customer_id from {{ ref('stg_raw__survey_responses') }} where response_date > {{ since }}

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

{%- endif %}
