with

source as (

    {{ source_or_empty('legacy_app', 'clients') }}

),

cleaned as (

    select
        -- keys
        {{ to_numeric('id') }}::bigint as app_client_id,
        {{ client_code('client_code') }} as client_code,
        client_code as client_code_raw,

        -- names and address
        {{ clean_text('invoice_title') }} as invoice_title,
        {{ clean_text('short_name') }} as short_name,
        {{ clean_address('address') }} as address,
        address as address_raw,

        -- flags (0/1 in the app)
        {{ to_numeric('is_active') }} = 1 as is_active,
        {{ to_numeric('is_terminated') }} = 1 as is_terminated,

        -- a test row of the app: a code that is no client code, or a test name
        (
            {{ client_code('client_code') }} is null
            or short_name ~* '(測試|test|demo)'
            or invoice_title ~* '(測試|test|demo)'
        ) as is_test_client,

        -- lineage
        _source_file as source_file,
        _source_sheet as source_table,
        _source_row as source_row,
        _load_id as load_id

    from source

)

select * from cleaned
