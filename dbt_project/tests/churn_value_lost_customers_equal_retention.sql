{#- churn_value_by_period counts its lost customers one by one (int_customers_lost);
    retention_by_period counts them from the customers active at the period's ends. Both
    must give the same number in every period ('overall' rows): the rows that differ. -#}
select
    churn_value.grain,
    churn_value.period_start,
    churn_value.lost_customers as counted_one_by_one,
    retention.lost_customers as counted_by_retention

from {{ ref('churn_value_by_period') }} as churn_value
full outer join (
    select grain, period_start, lost_customers
    from {{ ref('retention_by_period') }}
    where dimension = 'overall'
) as retention
    on churn_value.grain = retention.grain
    and churn_value.period_start = retention.period_start
where churn_value.lost_customers is distinct from retention.lost_customers
