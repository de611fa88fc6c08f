-- Every customer belongs to exactly one cohort per grain: at each grain the cohort
-- sizes (read at period 0) add up to the number of customers. Returns the grains
-- where they do not.
with

cohort_totals as (

    select grain, sum(cohort_size) as customers_in_cohorts
    from {{ ref('cohort_retention') }}
    where period_number = 0
    group by grain

),

customers as (

    select count(*) as customers from {{ ref('dim_customers') }}

)

select cohort_totals.grain, cohort_totals.customers_in_cohorts, customers.customers
from cohort_totals
cross join customers
where cohort_totals.customers_in_cohorts != customers.customers
