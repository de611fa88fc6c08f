{#- One row per order placed on or before the as-of date: its line items against its
    amount. The lines reconcile when
        sum of line_amount - discount + shipping + tax - refunded = amount
    (refunded only for a completed order: a completed order's amount nets a partial
    refund, a refunded or cancelled order keeps its total); an order part that is not
    exported counts 0. Otherwise the difference is kept with a reason (the rules: docs
    block order_reconciliation_reason). -#}
with

orders as (

    select
        order_id,
        customer_id,
        order_date,
        status,
        amount,
        discount_amount,
        shipping_amount,
        tax_amount,
        refunded_amount

    from {{ ref('int_orders_numbered') }}

),

lines as (

    select order_id, count(*) as line_count, sum(line_amount) as lines_amount
    from {{ ref('stg_raw__order_lines') }}
    group by order_id

),

expected as (

    select
        orders.*,
        coalesce(lines.line_count, 0) as line_count,
        lines.lines_amount,
        lines.lines_amount
            - coalesce(orders.discount_amount, 0)
            + coalesce(orders.shipping_amount, 0)
            + coalesce(orders.tax_amount, 0)
            - case when orders.status = 'completed' then coalesce(orders.refunded_amount, 0) else 0 end
            as expected_amount,
        coalesce(
            orders.discount_amount, orders.shipping_amount, orders.tax_amount, orders.refunded_amount
        ) is null as has_no_breakdown

    from orders
    left join lines on orders.order_id = lines.order_id

),

final as (

    select
        order_id,
        customer_id,
        order_date,
        status,
        {{ money('amount') }} as amount,
        line_count,
        {{ money('lines_amount') }} as lines_amount,
        {{ money('discount_amount') }} as discount_amount,
        {{ money('shipping_amount') }} as shipping_amount,
        {{ money('tax_amount') }} as tax_amount,
        {{ money('refunded_amount') }} as refunded_amount,
        {{ money('expected_amount') }} as expected_amount,
        {{ money('amount - expected_amount') }} as reconciliation_difference,
        case
            when line_count = 0 then 'no lines'
            when amount = expected_amount then 'reconciles'
            {#- every amount is rounded to the cent on its own (a converted currency): at
                most half a cent each, the lines and the order's five amounts #}
            when abs(amount - expected_amount) <= 0.005 * (line_count + 5) then 'rounding'
            when has_no_breakdown then 'shipping, tax or discounts'
            else 'unexplained'
        end as reconciliation_reason

    from expected

)

select * from final
{{ published_order(['order_id']) }}
