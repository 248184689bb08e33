{#-
    Every client code the delivery history names that the client master lacks, described by
    its own history rows (the real history has 12,028 such codes beside the master's
    1,267). The rule, one per detail: 電子發票抬頭 (invoice_title), 客戶簡稱 (short_name) and
    地址 (address) each come from the client's latest row where that cell is not blank,
    latest meaning the newest delivery date (rows without a valid date last), then the
    newest load, then the last file, sheet and row. A detail no row has stays NULL: never a
    placeholder. The customer's lineage (source_file, source_sheet, source_row) is its
    latest row; details_lineage says which row each detail comes from. Rows of any outcome
    count (a row quarantined for its date still names its client), rows without a valid
    code cannot.
-#}
{{ config(materialized='table') }}

with

history as (

    select * from {{ ref('stg_delivery_history__deliveries') }}
    where client_code is not null

),

master_codes as (

    select client_code from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

),

outside_master as (

    select
        history.*,
        row_number() over (
            partition by history.client_code
            order by
                history.delivery_date desc nulls last,
                history.load_id desc,
                history.source_file desc,
                history.source_sheet desc,
                history.source_row desc
        ) as recency
    from history
    where not exists (
        select 1 from master_codes
        where master_codes.client_code = history.client_code
    )

),

lineaged as (

    select
        *,
        jsonb_build_object(
            'file', source_file, 'sheet', source_sheet, 'row', source_row
        ) as row_lineage
    from outside_master

),

-- each detail from the latest row that has it (a blank sorts after every value)
latest_details as (

    select
        client_code,
        recency,
        source_file,
        source_sheet,
        source_row,
        first_value(invoice_title) over by_invoice_title as invoice_title,
        first_value(row_lineage) over by_invoice_title as invoice_title_lineage,
        first_value(short_name) over by_short_name as short_name,
        first_value(row_lineage) over by_short_name as short_name_lineage,
        first_value(address) over by_address as address,
        first_value(address_raw) over by_address as address_raw,
        first_value(row_lineage) over by_address as address_lineage,
        count(*) over by_client as history_rows,
        min(delivery_date) over by_client as first_delivery_date,
        max(delivery_date) over by_client as last_delivery_date
    from lineaged
    window
        by_client as (partition by client_code),
        by_invoice_title as (partition by client_code order by invoice_title is null, recency),
        by_short_name as (partition by client_code order by short_name is null, recency),
        by_address as (partition by client_code order by address is null, recency)

),

described as (

    select
        client_code,
        invoice_title,
        short_name,
        address,
        address_raw,
        history_rows,
        first_delivery_date,
        last_delivery_date,
        source_file,
        source_sheet,
        source_row,
        jsonb_strip_nulls(jsonb_build_object(
            '電子發票抬頭', case when invoice_title is not null then invoice_title_lineage end,
            '客戶簡稱', case when short_name is not null then short_name_lineage end,
            '地址', case when address is not null then address_lineage end
        )) as details_lineage
    from latest_details
    -- the latest row carries the customer's lineage
    where recency = 1

)

select * from described
