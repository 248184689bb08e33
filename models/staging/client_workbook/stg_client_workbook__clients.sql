-- depends_on: {{ ref('source_columns') }}
with

source as (

    -- empty, with the client master's columns, until the workbook is loaded
    {{ source_or_empty('client_workbook', 'clients') }}

),

cleaned as (

    select
        -- keys
        {{ client_code('"客戶"') }} as client_code,
        "客戶" as client_code_raw,

        -- names and address
        {{ clean_text('"電子發票抬頭"') }} as invoice_title,
        {{ clean_text('"客戶簡稱"') }} as short_name,
        {{ clean_address('"地址"') }} as address,
        "地址" as address_raw,

        -- cylinder inventory (cylinders) and metered supply points: the client_column of
        -- each product of seeds/products.csv
        {{ clean_text('"系統上鋼瓶數量"') }} as cylinder_config,
        {%- for product in product_catalogue() %}
            {{ to_numeric('"' ~ product.client_column ~ '"') }}
                as {{ product_quantity_column(product.product_code) }},
        {%- endfor %}

        -- commercial terms
        {{ clean_text('"計價方式"') }} as pricing_method_zh,
        {{ clean_text('"結帳方式"') }} as payment_method_zh,

        -- flags (V / blank) and the stray words beside them
        {{ flag_value('"結帳用檔案"') }} as uses_billing_file,
        {{ flag_word('"結帳用檔案"') }} as uses_billing_file_word,
        {{ flag_value('"訂閱式會員"') }} as is_subscription_member,
        {{ flag_word('"訂閱式會員"') }} as is_subscription_member_word,
        {{ flag_value('"發報"') }} as has_telemetry,
        {{ flag_word('"發報"') }} as has_telemetry_word,
        {{ flag_value('"排巡"') }} as on_patrol_route,
        {{ flag_word('"排巡"') }} as on_patrol_route_word,
        {{ flag_value('"設備客戶買斷"') }} as equipment_bought_out,
        {{ flag_word('"設備客戶買斷"') }} as equipment_bought_out_word,
        {{ flag_value('"已解約"') }} as is_terminated,
        {{ flag_word('"已解約"') }} as is_terminated_word,
        {{ flag_value('"需要當天配送"') }} as needs_same_day_delivery,
        {{ flag_word('"需要當天配送"') }} as needs_same_day_delivery_word,

        -- delivery windows: the hours (8 = 8~9 ... 19 = 19~20) marked 1
        array_remove(array[
            {%- for hour in range(8, 20) %}
                case when {{ flag_value('"' ~ hour ~ '~' ~ (hour + 1) ~ '"') }} then {{ hour }} end
                {%- if not loop.last %},{% endif %}
            {%- endfor %}
        ], null)::integer[] as delivery_hours,
        {{ clean_text('"時段早1午2晚3全天0"') }} as time_of_day_code,
        {{ clean_text('"公休日"') }} as closed_days_raw,
        {{ clean_text('"狀態"') }} as status_raw,

        -- equipment
        {{ clean_text('"切替器型號"') }} as switch_model,
        {{ flag_value('"流量表"') }} as has_flow_meter,
        {{ flag_word('"流量表"') }} as has_flow_meter_word,
        {{ flag_value('"帶線流量錶"') }} as has_wired_flow_meter,
        {{ flag_value('"切替器"') }} as has_switch,
        {{ flag_word('"切替器"') }} as has_switch_word,
        {{ flag_value('"col_70"') }} as unnamed_equipment_flag,
        {{ flag_value('"接點式壓力錶"') }} as has_contact_pressure_gauge,
        {{ flag_value('"壓差開關"') }} as has_pressure_difference_switch,
        {{ flag_value('"微動開關"') }} as has_micro_switch,
        {{ flag_value('"永勝"') }} as has_yongsheng_equipment,
        {{ flag_value('"智慧秤"') }} as has_smart_scale,

        -- planning metrics
        {{ to_numeric('"月配送量"') }} as monthly_delivery_kg,
        {{ to_numeric('"退氣"') }} as returned_gas_kg,
        {{ to_numeric('"實際購買公斤數"') }} as purchased_kg,
        {{ to_numeric('"退氣比例"') }} as return_ratio,
        {{ to_numeric('"平均日使用"') }} as daily_usage_kg,
        {{ to_numeric('"串接數量"') }} as connected_capacity_kg,
        {{ to_numeric('"備用量"') }} as reserve_kg,
        {{ to_numeric('"最大週期"') }} as max_cycle_days,
        {{ to_numeric('"可延後天數"') }} as delay_allowance_days,
        {{ to_numeric('"是否需要當天去"') }} as days_until_due,

        -- routing
        {{ clean_text('"區域"') }} as area_label,
        {{ clean_text('"1汽車/2機車/0全部"') }} as vehicle_type_code,
        {{ to_numeric('"單一區域供應"') }} as supply_points,
        {{ clean_text('"第一使用區域(串接)"') }} as usage_area_1,
        {{ clean_text('"第二使用區域"') }} as usage_area_2,
        {{ clean_text('"第三使用區域"') }} as usage_area_3,
        {{ clean_text('"第四使用區域"') }} as usage_area_4,
        {{ clean_text('"第五使用區域"') }} as usage_area_5,
        {{ clean_text('"預備桶"') }} as spare_cylinders,
        {{ clean_text('"串接場所申報"') }} as connection_site_declared,
        {{ clean_text('"類型"') }} as customer_type_zh,

        -- lineage
        _source_file as source_file,
        _source_sheet as source_sheet,
        _source_row as source_row,
        _load_id as load_id

    from source

)

select * from cleaned
