{#- NPS, CSAT and CES per grain x period x segment. Each response is counted once per
    grain in every dimension: the overall row (value 'all') and its survey channel,
    the customer's country and acquisition cohort, and the customer's lifecycle stage
    when they answered. A missing segment value is 'unknown'. -#}
{%- set grains = period_grains() -%}
{%- set dimensions = survey_dimensions() -%}
{%- set dimension_values = {
    'overall': "'all'",
    'channel': 'channel',
    'country': 'country',
    'cohort_month': 'cast(customer_cohort_month as ' ~ dbt.type_string() ~ ')',
    'lifecycle_stage': 'customer_lifecycle_stage_at_response',
} -%}
{%- set send_dimension_values = {'overall': "'all'", 'country': 'country', 'cohort_month': 'cohort_month'} -%}

with

responses as (

    select
        fct_survey_responses.response_id,
        fct_survey_responses.customer_id,
        fct_survey_responses.responded_at,
        fct_survey_responses.response_date,
        fct_survey_responses.nps_score,
        fct_survey_responses.nps_category,
        fct_survey_responses.csat_score,
        fct_survey_responses.ces_score,
        fct_survey_responses.channel,
        fct_survey_responses.customer_cohort_month,
        fct_survey_responses.customer_lifecycle_stage_at_response,
        dim_customers.country

    from {{ ref('fct_survey_responses') }} as fct_survey_responses
    left join {{ ref('dim_customers') }} as dim_customers
        on fct_survey_responses.customer_id = dim_customers.customer_id

),

sends as (

    select
        survey_sends.sent_date,
        dim_customers.country,
        cast(dim_customers.cohort_month as {{ dbt.type_string() }}) as cohort_month

    from {{ ref('stg_raw__survey_sends') }} as survey_sends
    left join {{ ref('dim_customers') }} as dim_customers
        on survey_sends.customer_id = dim_customers.customer_id

),

responses_by_period as (

    {%- for grain in grains %}
    select
        '{{ grain }}' as grain,
        {{ period_start(grain, 'response_date') }} as period_start,
        *

    from responses
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

{#- nps_count_mode = latest_per_customer keeps each known customer's latest response
    in the period; anonymous responses always count. #}
counted_responses as (

    {%- if var('nps_count_mode') == 'latest_per_customer' %}
    select * from (
        select
            *,
            row_number() over (
                partition by grain, period_start, customer_id
                order by responded_at desc, response_id desc
            ) as customer_response_number

        from responses_by_period
    ) as numbered_responses
    where customer_id is null or customer_response_number = 1
    {%- elif var('nps_count_mode') != 'all' %}
    {{ exceptions.raise_compiler_error(
        "var nps_count_mode must be 'all' or 'latest_per_customer', not '" ~ var('nps_count_mode') ~ "'"
    ) }}
    {%- else %}
    select * from responses_by_period
    {%- endif %}

),

segmented_responses as (

    {%- for dimension in dimensions %}
    select
        grain,
        period_start,
        '{{ dimension }}' as dimension,
        coalesce({{ dimension_values[dimension] }}, 'unknown') as dimension_value,
        nps_category,
        csat_score,
        ces_score

    from counted_responses
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}

),

aggregated as (

    select
        grain,
        period_start,
        dimension,
        dimension_value,
        count(nps_category) as responses,
        count(*) filter (where nps_category = 'promoter') as promoters,
        count(*) filter (where nps_category = 'passive') as passives,
        count(*) filter (where nps_category = 'detractor') as detractors,
        count(csat_score) as csat_responses,
        count(*) filter (where csat_score >= {{ var('csat_satisfied_min') }}) as csat_satisfied,
        count(ces_score) as ces_responses,
        avg(ces_score) as ces_avg,
        count(*) filter (where ces_score >= {{ var('ces_easy_min') }}) as ces_easy

    from segmented_responses
    group by grain, period_start, dimension, dimension_value

),

{#- Sends are attributed to the customer's country and cohort; the survey channel and
    the lifecycle stage of a send are not known, so those rows have no sends. #}
sends_by_segment as (

    {%- for grain in grains %}
    {%- set last_grain = loop.last %}
    {%- for dimension, value in send_dimension_values.items() %}
    select
        '{{ grain }}' as grain,
        {{ period_start(grain, 'sent_date') }} as period_start,
        '{{ dimension }}' as dimension,
        coalesce({{ value }}, 'unknown') as dimension_value,
        count(*) as surveys_sent

    from sends
    group by all
    {% if not (last_grain and loop.last) %}union all{% endif %}
    {%- endfor %}
    {%- endfor %}

),

has_sends as (

    select count(*) > 0 as has_sends from sends

),

final as (

    select
        aggregated.grain,
        aggregated.period_start,
        aggregated.dimension,
        aggregated.dimension_value,
        aggregated.responses,
        aggregated.promoters,
        aggregated.passives,
        aggregated.detractors,
        case when aggregated.responses > 0 then {{ pct('100.0 * aggregated.promoters / aggregated.responses') }} end
            as pct_promoters,
        case when aggregated.responses > 0 then {{ pct('100.0 * aggregated.passives / aggregated.responses') }} end
            as pct_passives,
        case when aggregated.responses > 0 then {{ pct('100.0 * aggregated.detractors / aggregated.responses') }} end
            as pct_detractors,
        {{ pct(nps('aggregated.promoters', 'aggregated.detractors', 'aggregated.responses')) }} as nps,
        {{ pct(nps_margin_of_error('aggregated.promoters', 'aggregated.detractors', 'aggregated.responses')) }}
            as nps_margin_of_error,
        aggregated.csat_responses,
        case
            when aggregated.csat_responses > 0
                then {{ pct('100.0 * aggregated.csat_satisfied / aggregated.csat_responses') }}
        end as csat_pct,
        aggregated.ces_responses,
        {{ quantity('aggregated.ces_avg') }} as ces_avg,
        case
            when aggregated.ces_responses > 0
                then {{ pct('100.0 * aggregated.ces_easy / aggregated.ces_responses') }}
        end as ces_pct_easy,
        case
            when has_sends.has_sends and aggregated.dimension in ('{{ send_dimension_values.keys() | join("', '") }}')
                then coalesce(sends_by_segment.surveys_sent, 0)
        end as surveys_sent,
        case
            when sends_by_segment.surveys_sent > 0
                then {{ pct('100.0 * aggregated.responses / sends_by_segment.surveys_sent') }}
        end as response_rate_pct,
        aggregated.responses >= {{ var('min_survey_responses') }} as is_reportable

    from aggregated
    cross join has_sends
    left join sends_by_segment
        on aggregated.grain = sends_by_segment.grain
        and aggregated.period_start = sends_by_segment.period_start
        and aggregated.dimension = sends_by_segment.dimension
        and aggregated.dimension_value = sends_by_segment.dimension_value

)

select * from final
{{ published_order() }}
