{#- The client master's column of a product's quantity, named for its code (GAS-C50-R:
    qty_gas_c50_r). -#}
{% macro product_quantity_column(product_code) -%}
    qty_{{ product_code | lower | replace('-', '_') }}
{%- endmacro %}
