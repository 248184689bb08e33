-- One row per app driver (luckygas.db drivers): the id deliveries.driver_id names, and the
-- driver's name. Empty when the app database was not loaded.
with

source as (

    {{ source_or_empty('legacy_app', 'drivers') }}

),

cleaned as (

    select
        -- keys
        {{ to_numeric('id') }}::bigint as driver_id,

        -- names
        {{ clean_text('name') }} as driver_name

    from source

)

select * from cleaned
