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

    select
        product_id,
        max_by(
            {{ struct_value([
                ('product_name', 'product_name'), ('category', 'category'), ('vendor', 'vendor')
            ]) }},
            {{ row_value(['order_date', 'order_id', 'line_number']) }}
        ) as latest

    from lines
    group by product_id

),

{#- Whether each customer ordered again after the first completed order. #}
repeaters as (

    select customer_id, max(customer_order_number) >= 2 as ordered_again
    from {{ ref('int_orders_numbered') }}
    where is_completed
    group by customer_id

),

{#- One row per product x completed order holding it: the distinct counts below become
    counts of rows (a customer has one first order, so its first orders are distinct
    customers). #}
product_orders as (

    select
        product_id,
        order_id,
        any_value(customer_id) as customer_id,
        bool_or(is_first_order) as is_first_order,
        sum(quantity) as units,
        sum(line_amount) as revenue

    from lines
    where status = 'completed'
    group by product_id, order_id

),

sold as (

    select
        product_orders.product_id,
        count(*) as orders,
        count(distinct product_orders.customer_id) as customers,
        cast(coalesce(sum(product_orders.units), 0) as bigint) as units,
        coalesce(sum(product_orders.revenue), 0) as revenue,
        count(*) filter (where product_orders.is_first_order) as first_orders,
        count(*) filter (
            where product_orders.is_first_order and repeaters.ordered_again
        ) as repeat_customers

    from product_orders
    left join repeaters on product_orders.customer_id = repeaters.customer_id
    group by product_orders.product_id

),

final as (

    select
        latest_lines.product_id,
        latest_lines.latest.product_name as product_name,
        latest_lines.latest.category as category,
        latest_lines.latest.vendor as vendor,
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
