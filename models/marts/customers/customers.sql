{#- One row per client code of any client source (int_customer_codes_unioned): the client
    master's; a code the master lacks that the delivery history names, described by its own
    history rows (int_history_clients_described); a code only the legacy app has, described
    by the app. customer_source says which. The master's other columns are NULL for the
    others. -#}
with

master as (

    select * from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

),

history_clients as (

    select * from {{ ref('int_history_clients_described') }}

),

app_first as (

    select * from {{ ref('int_app_clients_matched') }}
    where quarantine_reason is null

),

-- every customer's code, once, with the source that describes it
customer_codes as (

    select * from {{ ref('int_customer_codes_unioned') }}

),

codes as (

    select * from {{ ref('code_maps') }}

),

areas as (

    select * from {{ ref('delivery_areas') }}

),

final as (

    -- grouped by meaning, not by the kind of expression
    select  -- noqa: ST06
        -- keys
        customer_codes.client_code,
        app_first.app_client_id,
        customer_codes.customer_source,

        -- names and address, from the source that describes the customer
        case customer_codes.customer_source
            when 'client_master' then master.invoice_title
            when 'delivery_history' then history_clients.invoice_title
            else app_first.invoice_title
        end as invoice_title,
        case customer_codes.customer_source
            when 'client_master' then master.short_name
            when 'delivery_history' then history_clients.short_name
            else app_first.short_name
        end as short_name,
        case customer_codes.customer_source
            when 'client_master' then master.address
            when 'delivery_history' then history_clients.address
            else app_first.address
        end as address,
        case customer_codes.customer_source
            when 'client_master' then master.address_raw
            when 'delivery_history' then history_clients.address_raw
            else app_first.address_raw
        end as address_raw,

        -- area: 區域 as written, and the area the delivery_areas seed maps it to (NULL for
        -- a value the seed lacks: rule C17 lists it, the text stays here)
        master.area_label,
        areas.area_code,
        areas.area_name,

        -- commercial terms: each code beside the text it was mapped from
        master.pricing_method_zh,
        pricing.code as pricing_method,
        master.payment_method_zh,
        payment.code as payment_method,
        master.customer_type_zh,
        customer_type.code as customer_type,

        -- flags, each with the stray word it held instead of V (never lost)
        master.uses_billing_file,
        master.uses_billing_file_word,
        master.is_subscription_member,
        master.is_subscription_member_word,
        master.has_telemetry,
        master.has_telemetry_word,
        master.on_patrol_route,
        master.on_patrol_route_word,
        master.equipment_bought_out,
        master.equipment_bought_out_word,
        master.is_terminated,
        master.is_terminated_word,
        master.status_raw,
        master.needs_same_day_delivery,
        master.needs_same_day_delivery_word,

        -- delivery windows
        master.delivery_hours,
        master.time_of_day_code,
        time_of_day.code as time_of_day,
        master.closed_days_raw,
        master.closed_weekdays,
        master.closed_on_national_holidays,
        master.closed_days_unparsed,
        master.vehicle_type_code,
        vehicle.code as vehicle_type,

        -- equipment
        master.switch_model,
        master.has_flow_meter,
        master.has_flow_meter_word,
        master.has_switch,
        master.has_switch_word,
        master.has_smart_scale,
        master.has_wired_flow_meter,
        master.has_contact_pressure_gauge,
        master.has_pressure_difference_switch,
        master.has_micro_switch,
        master.has_yongsheng_equipment,
        master.unnamed_equipment_flag,

        -- cylinder set-up as written (free text such as 20*3+16*1)
        master.cylinder_config,
        master.usage_area_1,
        master.usage_area_2,
        master.usage_area_3,
        master.usage_area_4,
        master.usage_area_5,
        master.spare_cylinders,
        master.connection_site_declared,
        master.supply_points,
        master.connected_capacity_kg,

        -- planning metrics
        master.monthly_delivery_kg,
        master.returned_gas_kg,
        master.purchased_kg,
        master.return_ratio,
        master.daily_usage_kg,
        master.reserve_kg,
        master.max_cycle_days,
        master.delay_allowance_days,
        master.days_until_due,

        -- the delivery history's view of a customer the master lacks
        history_clients.history_rows,
        history_clients.first_delivery_date,
        history_clients.last_delivery_date,

        -- lineage: the master row, the history client's latest row, or the app row
        coalesce(master.source_file, history_clients.source_file, app_first.source_file)
            as source_file,
        coalesce(master.source_sheet, history_clients.source_sheet, app_first.source_table)
            as source_sheet,
        coalesce(master.source_row, history_clients.source_row, app_first.source_row)
            as source_row,
        history_clients.details_lineage,
        app_first.source_row as app_source_row

    from customer_codes
    left join master
        on customer_codes.client_code = master.client_code
    left join history_clients
        on customer_codes.client_code = history_clients.client_code
    left join app_first
        on customer_codes.client_code = app_first.client_code
    left join areas
        on master.area_label = areas.area_label
    left join codes as pricing
        on pricing.code_set = 'pricing_method' and master.pricing_method_zh = pricing.source_value
    left join codes as payment
        on payment.code_set = 'payment_method' and master.payment_method_zh = payment.source_value
    left join codes as customer_type
        on
            customer_type.code_set = 'customer_type'
            and master.customer_type_zh = customer_type.source_value
    left join codes as time_of_day
        on
            time_of_day.code_set = 'time_of_day'
            and master.time_of_day_code = time_of_day.source_value
    left join codes as vehicle
        on
            vehicle.code_set = 'vehicle_type'
            and master.vehicle_type_code = vehicle.source_value

)

select * from final
