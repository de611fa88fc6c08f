with

orders as (

    select
        customer_id,
        order_id,
        ordered_at,
        order_date,
        amount,
        channel,
        country,
        customer_order_number

    from {{ ref('int_orders_numbered') }}
    where is_completed

),

latest_scores as (

    select
        customer_id,
        {#- the response id breaks a tie of two responses at the same moment #}
        arg_max(nps_score, (responded_at, response_id)) as latest_nps_score,
        arg_max(nps_category, (responded_at, response_id)) as latest_nps_category,
        max(responded_at) as latest_nps_at

    from {{ ref('fct_survey_responses') }}
    where nps_score is not null and customer_id is not null
    group by customer_id

),

customer_clv as (

    select customer_id, p_alive, clv_12m
    from {{ ref('customer_clv') }}

),

customers as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        min(order_date) as first_order_date,
        max(ordered_at) as last_order_at,
        max(order_date) as last_order_date,
        count(*) as completed_orders,
        {{ money('sum(amount)') }} as historic_revenue,
        any_value(channel) filter (where customer_order_number = 1) as acquisition_channel,
        arg_max(country, (ordered_at, order_id)) filter (where country is not null) as country

    from orders
    group by customer_id

),

measured as (

    select
        customer_id,
        first_order_at,
        {{ period_start('month', 'first_order_date') }} as cohort_month,
        {{ period_start('week', 'first_order_date') }} as cohort_week,
        {{ period_start('quarter', 'first_order_date') }} as cohort_quarter,
        acquisition_channel,
        country,
        last_order_at,
        completed_orders,
        historic_revenue,
        {{ money('historic_revenue / completed_orders') }} as aov,
        {{ dbt.datediff('last_order_date', as_of_date(), 'day') }} as days_since_last_order,
        {{ dbt.datediff('first_order_date', as_of_date(), 'day') }} as days_since_first_order

    from customers

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
        cast(recency_score as varchar)
            || cast(frequency_score as varchar)
            || cast(monetary_score as varchar) as rfm_segment,
        latest_scores.latest_nps_score,
        latest_scores.latest_nps_category,
        latest_scores.latest_nps_at

    from ranked
    left join latest_scores on ranked.customer_id = latest_scores.customer_id

)

select * from final
{{ published_order() }}
