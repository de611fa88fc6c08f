{#- The lifecycle stage from whole days since the last and the first completed order
    (docs/metrics.md, "Customer lifecycle"): the first that applies of churned, at_risk,
    new, active. Used for the as-of date (dim_customers) and at a survey response. -#}
{% macro lifecycle_stage(days_since_last_order, days_since_first_order) -%}
    case
        when {{ days_since_last_order }} >= {{ var('churn_window_days') }} then 'churned'
        when {{ days_since_last_order }} >= {{ var('at_risk_days') }} then 'at_risk'
        when {{ days_since_first_order }} < {{ var('new_customer_days') }} then 'new'
        else 'active'
    end
{%- endmacro %}
