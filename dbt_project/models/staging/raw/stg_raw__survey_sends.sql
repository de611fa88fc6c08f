with

source as (

    select * from {{ source('raw', 'survey_sends') }}

),

renamed as (

    select
        send_id,
        customer_id,
        sent_at,
        cast({{ to_reporting_time('sent_at') }} as date) as sent_date,
        channel,
        _file_name as source_file_name,
        _line_number as source_line_number

    from source

),

final as (

    select * from renamed
    where sent_date <= {{ as_of_date() }}

)

select * from final
