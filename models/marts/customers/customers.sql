with

master as (

    select * from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

),

app_first as (

    select * from {{ ref('int_app_clients_matched') }}
    where quarantine_reason is null

),

codes as (

    select * from {{ ref('code_maps') }}

),

areas as (

    select * from {{ ref('delivery_areas') }}

),

final as (

    select
        -- keys
        master.client_code,
        app_first.app_client_id,

        -- names and address
        master.invoice_title,
        master.short_name,
        master.address,
        master.address_raw,

        -- area
        areas.area_code,
        areas.area_name,

        -- commercial terms
        pricing.code as pricing_method,
        payment.code as payment_method,
        customer_type.code as customer_type,

        -- flags, each with the stray word it held instead of V (never lost)
        master.uses_billing_file,
        master.uses_billing_file_word,
        master.is_subscription_member,
        master.is_subscription_member_word,
        master.has_telemetry,
        master.on_patrol_route,
        master.on_patrol_route_word,
        master.equipment_bought_out,
        master.equipment_bought_out_word,
        master.is_terminated,
        master.needs_same_day_delivery,
        master.needs_same_day_delivery_word,

        -- delivery windows
        master.delivery_hours,
        time_of_day.code as time_of_day,
        master.closed_weekdays,
        master.closed_on_national_holidays,
        master.closed_days_unparsed,
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

        -- lineage
        master.source_file,
        master.source_sheet,
        master.source_row,
        app_first.source_row as app_source_row

    from master
    left join app_first
        on master.client_code = app_first.client_code
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
            and master.time_of_day_code::text = time_of_day.source_value
    left join codes as vehicle
        on
            vehicle.code_set = 'vehicle_type'
            and master.vehicle_type_code::text = vehicle.source_value

)

select * from final
