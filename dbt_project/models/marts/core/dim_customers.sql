with

orders as (

    select
        customer_id,
        order_id,
        ordered_at,
        order_date,
        amount,
        country

    from {{ ref('int_orders_numbered') }}
    where is_completed

),

latest_responses as (

    select
        customer_id,
        {#- the response id breaks a tie of two responses at the same moment #}
        max_by(nps_score, {{ row_value(['responded_at', 'response_id']) }}) as latest_nps_score,
        max(responded_at) as latest_nps_at

    from {{ ref('stg_raw__survey_responses') }}
    where nps_score is not null and customer_id is not null
    group by customer_id

),

latest_scores as (

    select
        customer_id,
        latest_nps_score,
        {{ nps_category('latest_nps_score') }} as latest_nps_category,
        latest_nps_at

    from latest_responses

),

customer_clv as (

    select customer_id, p_alive, clv_12m
    from {{ ref('customer_clv') }}

),

customers as (

    select
        customer_id,
        max(ordered_at) as last_order_at,
        max(order_date) as last_order_date,
        count(*) as completed_orders,
        {{ money('sum(amount)') }} as historic_revenue,
        max_by(country, {{ row_value(['ordered_at', 'order_id']) }}) filter (where country is not null)
            as country

    from orders
    group by customer_id

),

acquired as (

    select * from {{ ref('int_customers_acquired') }}

),

measured as (

    select
        customers.customer_id,
        acquired.first_order_at,
        acquired.cohort_month,
        acquired.cohort_week,
        acquired.cohort_quarter,
        acquired.acquisition_channel,
        acquired.first_product_id,
        acquired.first_product_category,
        customers.country,
        customers.last_order_at,
        customers.completed_orders,
        customers.historic_revenue,
        {{ money(money_per('customers.historic_revenue', 'customers.completed_orders')) }} as aov,
        {{ dbt.datediff('customers.last_order_date', as_of_date(), 'day') }} as days_since_last_order,
        {{ dbt.datediff('acquired.first_order_date', as_of_date(), 'day') }} as days_since_first_order

    from customers
    inner join acquired on customers.customer_id = acquired.customer_id

),

staged as (

    select
        *,
        {{ lifecycle_stage('days_since_last_order', 'days_since_first_order') }} as lifecycle_stage,
        case
            when days_since_last_order >= {{ var('churn_window_days') }}
                then {{ dbt.dateadd('day', var('churn_window_days'), 'last_order_at') }}
        end as churned_at

    from measured

),

{#- High value: the top high_value_share of customers who have not churned, ranked by
    predicted 12-month CLV, historic revenue where there is no prediction (ties share
    a rank, so tied customers are in or out together). #}
ranked as (

    select
        staged.*,
        customer_clv.p_alive,
        customer_clv.clv_12m,
        lifecycle_stage != 'churned' and percent_rank() over (
            partition by lifecycle_stage = 'churned'
            order by coalesce(customer_clv.clv_12m, staged.historic_revenue) desc
        ) < {{ var('high_value_share') }} as is_high_value,
        {{ quintile_score('days_since_last_order', descending=true) }} as recency_score,
        {{ quintile_score('completed_orders') }} as frequency_score,
        {{ quintile_score('historic_revenue') }} as monetary_score

    from staged
    left join customer_clv on staged.customer_id = customer_clv.customer_id

),

final as (

    select
        ranked.customer_id,
        first_order_at,
        cohort_month,
        cohort_week,
        cohort_quarter,
        acquisition_channel,
        country,
        last_order_at,
        completed_orders,
        historic_revenue,
        aov,
        days_since_last_order,
        lifecycle_stage,
        is_high_value,
        p_alive,
        clv_12m,
        churned_at,
        recency_score,
        frequency_score,
        monetary_score,
        cast(recency_score as {{ dbt.type_string() }})
            || cast(frequency_score as {{ dbt.type_string() }})
            || cast(monetary_score as {{ dbt.type_string() }}) as rfm_segment,
        latest_scores.latest_nps_score,
        latest_scores.latest_nps_category,
        latest_scores.latest_nps_at,
        first_product_id,
        first_product_category

    from ranked
    left join latest_scores on ranked.customer_id = latest_scores.customer_id

)

select * from final
{{ published_order(['customer_id']) }}
