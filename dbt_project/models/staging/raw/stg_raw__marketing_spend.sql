with

source as (

    select * from {{ source('raw', 'marketing_spend') }}

),

renamed as (

    select
        -- a calendar day as exported (no time of day, no time zone)
        spent_on as spent_date,
        channel,
        campaign,
        amount,
        currency,
        _file_name as source_file_name,
        _line_number as source_line_number

    from source

),

final as (

    select * from renamed
    where spent_date <= {{ as_of_date() }}

)

select * from final
