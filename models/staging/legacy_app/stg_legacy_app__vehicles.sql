-- One row per app vehicle (luckygas.db vehicles): the id deliveries.vehicle_id names, and
-- the plate number. Empty when the app database was not loaded.
with

source as (

    {{ source_or_empty('legacy_app', 'vehicles') }}

),

cleaned as (

    select
        -- keys
        {{ to_numeric('id') }}::bigint as vehicle_id,

        -- text
        {{ clean_text('plate_number') }} as vehicle_plate

    from source

)

select * from cleaned
