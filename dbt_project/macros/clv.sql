{#- A CLV summary mart: customer_clv grouped by columns of dim_customers, with the
    customers and the sum (total_) and mean (avg_) of every CLV value. Means ignore
    NULL values. The values are customer_clv's money (exact cents), so the sums do not
    depend on the order DuckDB adds them up in. total_clv_12m_low / _high: the 90 %
    interval of the group's summed clv_12m (int_clv_sums_by_group, rows of `grouping`),
    widened to contain total_clv_12m (it is a sum of rounded cents); avg_ the same per
    customer. -#}
{% macro clv_summary_by(dimensions, grouping) -%}
{%- set clv_columns = ['historic_clv', 'annual_value', 'clv_rule_of_20', 'clv_simple', 'clv_12m'] -%}

with

customers as (

    select customer_id, {{ dimensions | join(', ') }}
    from {{ ref('dim_customers') }}

),

customer_clv as (

    select customer_id, {{ clv_columns | join(', ') }}
    from {{ ref('customer_clv') }}

),

intervals as (

    select *
    from {{ ref('int_clv_sums_by_group') }}
    where grouping = '{{ grouping }}'

),

summed as (

    select
        {%- for dimension in dimensions %}
        customers.{{ dimension }},
        {%- endfor %}
        count(*) as customers,
        {%- for column in clv_columns %}
        {{ money('sum(customer_clv.' ~ column ~ ')') }} as total_{{ column }},
        {{ money(money_mean('customer_clv.' ~ column)) }} as avg_{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}

    from customers
    inner join customer_clv on customers.customer_id = customer_clv.customer_id
    group by {% for dimension in dimensions %}customers.{{ dimension }}{{ ', ' if not loop.last }}{% endfor %}

),

final as (

    select
        summed.*,
        {%- set low = 'case when intervals.total_clv_12m_low is not null then least(intervals.total_clv_12m_low, summed.total_clv_12m) end' %}
        {%- set high = 'case when intervals.total_clv_12m_high is not null then greatest(intervals.total_clv_12m_high, summed.total_clv_12m) end' %}
        {{ money(low) }} as total_clv_12m_low,
        {{ money(high) }} as total_clv_12m_high,
        {{ money(money_per('(' ~ low ~ ')', 'summed.customers')) }} as avg_clv_12m_low,
        {{ money(money_per('(' ~ high ~ ')', 'summed.customers')) }} as avg_clv_12m_high

    from summed
    left join intervals on
        {%- for dimension in dimensions %}
        summed.{{ dimension }} is not distinct from intervals.{{ dimension }}{{ ' and' if not loop.last }}
        {%- endfor %}

)

select * from final
{{ published_order() }}
{%- endmacro %}


{#- The BTYD inputs of one customer, as the literature defines them over distinct purchase
    days: frequency x = purchase days - 1, recency t_x = days from the first to the last
    purchase day, T = days from the first purchase day to `window_end`, monetary value =
    mean revenue of the repeat purchase days (0 when x = 0). The arguments are SQL
    expressions; used for the whole history and for the holdout's calibration window. -#}
{% macro btyd_inputs(first_date, last_date, window_end, purchase_days, revenue, first_day_revenue) -%}
        {{ purchase_days }} - 1 as frequency,
        {{ dbt.datediff(first_date, last_date, 'day') }} as recency_days,
        {{ dbt.datediff(first_date, window_end, 'day') }} as t_days,
        case
            when {{ purchase_days }} > 1
                then cast({{ revenue }} - {{ first_day_revenue }} as double)
                    / ({{ purchase_days }} - 1)
            else 0
        end as monetary_value
{%- endmacro %}
