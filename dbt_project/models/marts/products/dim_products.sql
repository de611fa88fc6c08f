{#- One row per product sold on or before the as-of date: what it sold in completed
    orders, its share of line revenue and how often the customers it brought in came
    back. -#}
with

lines as (

    select * from {{ ref('fct_order_lines') }}

),

{#- The name, category and vendor of the product's latest line: a renamed product
    shows its current name. #}
latest_lines as (

    select product_id, product_name, category, vendor
    from lines
    qualify row_number() over (
        partition by product_id order by order_date desc, order_id desc, line_number desc
    ) = 1

),

{#- Whether each customer ordered again after the first completed order. #}
repeaters as (

    select customer_id, max(customer_order_number) >= 2 as ordered_again
    from {{ ref('int_orders_numbered') }}
    where is_completed
    group by customer_id

),

sold as (

    select
        lines.product_id,
        count(distinct lines.order_id) as orders,
        count(distinct lines.customer_id) as customers,
        cast(coalesce(sum(lines.quantity), 0) as bigint) as units,
        coalesce(sum(lines.line_amount), 0) as revenue,
        count(distinct lines.order_id) filter (where lines.is_first_order) as first_orders,
        count(distinct lines.customer_id) filter (
            where lines.is_first_order and repeaters.ordered_again
        ) as repeat_customers

    from lines
    left join repeaters on lines.customer_id = repeaters.customer_id
    where lines.status = 'completed'
    group by lines.product_id

),

final as (

    select
        latest_lines.product_id,
        latest_lines.product_name,
        latest_lines.category,
        latest_lines.vendor,
        coalesce(sold.orders, 0) as orders,
        coalesce(sold.customers, 0) as customers,
        coalesce(sold.units, 0) as units,
        {{ money('coalesce(sold.revenue, 0)') }} as revenue,
        {{ pct('100 * coalesce(sold.revenue, 0) / nullif(sum(sold.revenue) over (), 0)') }}
            as revenue_share_pct,
        coalesce(sold.first_orders, 0) as first_orders,
        coalesce(sold.repeat_customers, 0) as repeat_customers,
        {{ pct('100 * sold.repeat_customers / nullif(sold.first_orders, 0)') }}
            as repeat_purchase_rate_pct

    from latest_lines
    left join sold on latest_lines.product_id = sold.product_id

)

select * from final
{{ published_order() }}
