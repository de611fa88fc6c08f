{#- One row per customer with at least one completed order: the segment the customer
    falls in for each retention dimension (macro retention_attributes), fixed for the
    customer's whole history, so that each dimension splits the customers into groups
    that add up to all of them. A missing value is '(unknown)' (macro
    unknown_if_missing, the label the acquisition marts use too). Incremental
    (macros/incremental.sql): a night recomputes only the changed customers. -#}
{{ config(
    materialized=by_customer_materialization(),
    incremental_strategy='replace_changed_customers',
    on_schema_change='fail',
) }}

with

customers as (

    select
        customer_id,
        acquisition_channel,
        first_order_country,
        first_product_category

    from {{ ref('int_customers_acquired') }}
    where {{ changed_customers_only('customer_id') }}

),

{#- The first response with an NPS score (earliest, ties to the lowest response id),
    up to the as-of date. #}
first_responses as (

    select
        customer_id,
        {{ nps_category('nps_score') }} as nps_category

    from (
        select
            customer_id,
            nps_score,
            row_number() over (
                partition by customer_id order by responded_at, response_id
            ) as response_number

        from {{ ref('stg_raw__survey_responses') }}
        where customer_id is not null and nps_score is not null and {{ changed_customers_only('customer_id') }}
    ) as numbered_responses
    where response_number = 1

),

final as (

    select
        customers.customer_id,
        {{ unknown_if_missing('customers.acquisition_channel') }} as acquisition_channel,
        {{ unknown_if_missing('customers.first_order_country') }} as country,
        {{ unknown_if_missing('customers.first_product_category') }} as first_product_category,
        coalesce(first_responses.nps_category, '(no response)') as first_nps_category

    from customers
    left join first_responses on customers.customer_id = first_responses.customer_id

)

select * from final
