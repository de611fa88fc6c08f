{#- The breakdowns of retention_by_period and cohort_retention. 'overall' (value 'all') is
    the whole customer base; every other dimension is a column of int_customer_dimensions
    that gives each customer exactly one value, so its groups add up to 'overall'. -#}
{% macro retention_dimensions() -%}
    {{ return(['overall', 'acquisition_channel', 'country', 'first_product_category', 'first_nps_category']) }}
{%- endmacro %}

{#- The dimensions other than 'overall': the customer attribute columns. -#}
{% macro retention_attributes() -%}
    {{ return(retention_dimensions() | reject('equalto', 'overall') | list) }}
{%- endmacro %}

{#- Counts kept per combination of customer attributes (`from`: a CTE with `keys`, the
    columns of retention_attributes() and the additive measures `sums`), summed up to one
    row per keys x dimension x dimension value: each measure is added once in every
    dimension, so cheap roll-ups replace a copy of every customer row per dimension.
    `types` casts a sum (default bigint). -#}
{% macro sum_by_dimension(from, keys, sums, types={}) -%}
    {%- for dimension in retention_dimensions() %}
    select
        {{ keys | join(', ') }},
        '{{ dimension }}' as dimension,
        {{ "'all'" if dimension == 'overall' else dimension }} as dimension_value,
        {%- for column in sums %}
        cast(sum({{ column }}) as {{ types.get(column, 'bigint') }}) as {{ column }}{{ ',' if not loop.last }}
        {%- endfor %}

    from {{ from }}
    group by {{ keys | join(', ') }}{{ ', ' ~ dimension if dimension != 'overall' }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#- The grains of cohort_retention broken down by every dimension; the others (weeks)
    have the 'overall' rows only. -#}
{% macro cohort_dimension_grains() -%}
    {{ return(['month', 'quarter']) }}
{%- endmacro %}
