{#- The legacy app's delivered quantity column for each cylinder size in kg, largest first
    ({50: 'delivered_50kg', ...}): the app_column of each regular cylinder of
    seeds/products.csv (the app records cylinders by size only). -#}
{% macro app_size_columns() -%}
    {%- set sizes = {} -%}
    {%- for product in product_catalogue() | sort(attribute='size_kg', reverse=true)
        if product.brand == 'regular' and product.kind == 'cylinder' and product.app_column -%}
        {%- do sizes.update({product.size_kg: product.app_column}) -%}
    {%- endfor -%}
    {{ return(sizes) }}
{%- endmacro %}
