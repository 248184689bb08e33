{#- Every client code of any client source that becomes a customer, once, with the source
    that describes it (customer_source): the client master's (the first row of each valid
    code); a code the master lacks that the delivery history names
    (int_history_clients_described); a code only the legacy app has. customers is one row
    per code here, and int_delivery_rows_classified checks each delivery's client against
    it. A table: it is joined to every delivery source row. -#}
{{ config(materialized='table') }}

with

master as (

    select client_code from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

),

history_clients as (

    select client_code from {{ ref('int_history_clients_described') }}

),

app_first as (

    select client_code from {{ ref('int_app_clients_matched') }}
    where quarantine_reason is null

),

unioned as (

    select
        client_code,
        'client_master' as customer_source
    from master

    union all

    select
        client_code,
        'delivery_history' as customer_source
    from history_clients

    union all

    select
        app_first.client_code,
        'legacy_app' as customer_source
    from app_first
    where
        not exists (
            select 1 from master
            where master.client_code = app_first.client_code
        )
        and not exists (
            select 1 from history_clients
            where history_clients.client_code = app_first.client_code
        )

)

select * from unioned
