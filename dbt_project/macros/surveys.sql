{#- The NPS bucket of a 0-10 score: promoters 9-10, passives 7-8, detractors 0-6
    (the definition of the Net Promoter Score, so not a var). -#}
{% macro nps_category(score) -%}
    case
        when {{ score }} >= 9 then 'promoter'
        when {{ score }} >= 7 then 'passive'
        when {{ score }} >= 0 then 'detractor'
    end
{%- endmacro %}

{#- The segments NPS, CSAT and CES are broken down by in nps_by_period. -#}
{% macro survey_dimensions() -%}
    {{ return(['overall', 'channel', 'country', 'cohort_month', 'lifecycle_stage']) }}
{%- endmacro %}

{#- Net Promoter Score from promoter and detractor counts out of n scored responses. -#}
{% macro nps(promoters, detractors, responses) -%}
    case
        when ({{ responses }}) > 0
            then 100.0 * (({{ promoters }}) - ({{ detractors }})) / ({{ responses }})
    end
{%- endmacro %}

{#- The 95 % margin of error of an NPS, in NPS points: 1.96 x the standard error of
    (share of promoters - share of detractors) x 100. -#}
{% macro nps_margin_of_error(promoters, detractors, responses) -%}
    {%- set n = '(' ~ responses ~ ')' -%}
    case
        when {{ n }} > 0 then 1.96 * sqrt(
            (
                1.0 * ({{ promoters }}) / {{ n }}
                + 1.0 * ({{ detractors }}) / {{ n }}
                - power(1.0 * (({{ promoters }}) - ({{ detractors }})) / {{ n }}, 2)
            ) / {{ n }}
        ) * 100
    end
{%- endmacro %}
