{#- A CLV summary mart: customer_clv grouped by columns of dim_customers, with the
    customers and the sum (total_) and mean (avg_) of every CLV value. Means ignore
    NULL values. -#}
{% macro clv_summary_by(dimensions) -%}
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

final as (

    select
        {%- for dimension in dimensions %}
        customers.{{ dimension }},
        {%- endfor %}
        count(*) as customers,
        {%- for column in clv_columns %}
        sum(customer_clv.{{ column }}) as total_{{ column }},
        avg(customer_clv.{{ column }}) as avg_{{ column }}{{ ',' if not loop.last }}
        {%- endfor %}

    from customers
    inner join customer_clv on customers.customer_id = customer_clv.customer_id
    group by {% for dimension in dimensions %}customers.{{ dimension }}{{ ', ' if not loop.last }}{% endfor %}

)

select * from final
{%- endmacro %}
