-- Every app client, with the reason it is not the app's record of a customer (NULL: it is
-- one; precedence: seeds/quarantine_reasons.csv): test rows, codes no client source has
-- (neither the master nor the delivery history), and later rows of a repeated code.
with

app as (

    select * from {{ ref('stg_legacy_app__clients') }}

),

customer_codes as (

    select client_code
    from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

    union

    select client_code
    from {{ ref('int_history_clients_described') }}

),

ranked as (

    select
        app.*,
        customer_codes.client_code is not null as is_customer,
        row_number() over (
            partition by app.client_code, app.is_test_client order by app.app_client_id
        ) as nth_of_code
    from app
    left join customer_codes on app.client_code = customer_codes.client_code

),

matched as (

    select
        *,
        {{ first_quarantine_reason({
            'test_client': 'is_test_client',
            'unknown_client': 'not is_customer',
            'duplicate_client_code': 'nth_of_code > 1',
        }) }} as quarantine_reason
    from ranked

)

select * from matched
